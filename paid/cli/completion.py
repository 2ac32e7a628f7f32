"""``paid completion bash|zsh|fish``: shell completion, generated from the parser itself.

The commands, their sub-verbs, their options and the values those take
(choices, directories, files) are read off the argparse tree, so
completion cannot drift from the command line. Service names come from
the desired state, through ``paid completion --services DIR``.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

from paid.cli.common import EXIT_ERROR, EXIT_OK, out, stderr
from paid.cli.options import Parents, Subparsers
from paid.state.specs import NAME_PATTERN
from paid.storage.files import read_file
from paid.storage.loading import MAX_FILES


def register(sub: Subparsers, parents: Parents) -> None:
    completion = sub.add_parser(
        "completion",
        help="print a shell completion script",
    )
    completion.add_argument("shell", nargs="?", choices=("bash", "zsh", "fish"))
    completion.add_argument(
        "--services",
        metavar="DIR",
        help="print the service names of the desired state in DIR, one per line "
        "(what the scripts call to complete a service)",
    )
    completion.set_defaults(handler=_completion)


def _completion(args: argparse.Namespace) -> int:
    if args.services is not None:
        return _services(args.services)
    if args.shell is None:
        stderr("paid: completion: name a shell (bash, zsh or fish)")
        return EXIT_ERROR
    from paid.cli.dispatch import build_parser  # noqa: PLC0415 -- the whole tree, built once here

    tree = _tree(build_parser())
    out(_bash(tree) if args.shell in ("bash", "zsh") else _fish(tree))
    if args.shell == "zsh":
        out("# zsh: autoload -U +X bashcompinit && bashcompinit, then source this")
    return EXIT_OK


def _services(directory: str) -> int:
    """Names only, offline, quietly: a broken file still lets the others complete."""
    names: set[str] = set()
    path = Path(directory)
    files = [path] if path.is_file() else sorted(path.rglob("*.y*ml")) if path.is_dir() else []
    for file in files[:MAX_FILES]:
        if any(part.startswith(".") for part in file.relative_to(path).parts if part != "."):
            continue
        docs, _ = read_file(file, display=str(file))
        for doc in docs:
            value = doc.value
            if isinstance(value, dict) and value.get("kind") == "Service":
                name = (value.get("metadata") or {}).get("name")
                if isinstance(name, str) and re.fullmatch(NAME_PATTERN, name):
                    names.add(name)
    for name in sorted(names):
        out(name)
    return EXIT_OK


@dataclass(frozen=True, slots=True)
class Command:
    """What completes after one command (or command and verb)."""

    options: list[str]
    values: dict[str, str]  # option -> "W:word word" | "d" (directories) | "f" (files)
    positionals: list[str]  # each: "services", "state" (a dir or YAML file), "W:..." or "f"


Tree = dict[str, Command]  # "apply", "backup run", ...


def _tree(parser: argparse.ArgumentParser) -> Tree:
    tree: Tree = {}
    for name, command in _subcommands(parser).items():
        verbs = _subcommands(command)
        if verbs:
            tree[name] = Command([], {}, [f"W:{' '.join(sorted(verbs))}"])
            for verb, sub in verbs.items():
                tree[f"{name} {verb}"] = _command(sub)
        else:
            tree[name] = _command(command)
    return tree


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _command(parser: argparse.ArgumentParser) -> Command:
    options: list[str] = []
    values: dict[str, str] = {}
    positionals: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
            continue
        kind = _value_kind(action)
        if not action.option_strings:
            positionals.append(kind)
            continue
        options += [o for o in action.option_strings if o.startswith("--")]
        if action.nargs != 0:
            for option in action.option_strings:
                values[option] = kind
    return Command(sorted(options), values, positionals)


def _value_kind(action: argparse.Action) -> str:
    if action.choices:
        return "W:" + " ".join(str(c) for c in action.choices)
    if action.dest == "service":
        return "services"
    if action.dest == "dir":
        return "state"
    if action.dest.endswith("_dir") or action.metavar in ("DIR", "PREFIX"):
        return "d"
    return "f"


def _compgen(kind: str) -> str:
    """The bash that fills COMPREPLY for one kind of value."""
    if kind.startswith("W:"):
        return f'COMPREPLY=($(compgen -W "{kind[2:]}" -- "$cur"))'
    if kind == "services":
        return (
            'COMPREPLY=($(compgen -W "$(paid completion --services "$dir" 2>/dev/null)" -- "$cur"))'
        )
    if kind == "state":
        return (
            'COMPREPLY=($(compgen -d -- "$cur") $(compgen -f -X "!*.y*ml" -- "$cur")); '
            "compopt -o filenames 2>/dev/null"
        )
    if kind == "d":
        return 'COMPREPLY=($(compgen -d -- "$cur")); compopt -o filenames 2>/dev/null'
    return 'COMPREPLY=($(compgen -f -- "$cur")); compopt -o filenames 2>/dev/null'


def _bash(tree: Tree) -> str:
    top = sorted(name for name in tree if " " not in name)
    cases = []
    for path, command in sorted(tree.items()):
        values = " ".join(
            f"{option}) {_compgen(kind)}; return;;"
            for option, kind in sorted(command.values.items())
        )
        takes = "|".join(sorted(command.values)) or "--none"
        positional = " ".join(
            f"{i}) {_compgen(kind)};;" for i, kind in enumerate(command.positionals)
        )
        cases.append(
            f'    "{path}") opts="{" ".join(command.options)}"; '
            f'case "$prev" in {values} esac; takes="{takes}"; '
            f'positional() {{ case "$1" in {positional} *) COMPREPLY=();; esac; }};;'
        )
    return "\n".join(
        [
            "# paid completion for bash (and zsh with bashcompinit)",
            "_paid() {",
            '  local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
            '  local path="${COMP_WORDS[1]}" first=2 opts="" takes="" dir="desired-state"',
            '  if [ "$COMP_CWORD" -eq 1 ]; then',
            f'    COMPREPLY=($(compgen -W "{" ".join(top)}" -- "$cur")); return',
            "  fi",
            '  case "$path" in',
            *(
                f'    {name}) if [ "$COMP_CWORD" -gt 2 ]; then path="$path ${{COMP_WORDS[2]}}"; '
                "first=3; fi;;"
                for name in top
                if tree[name].positionals[:1]
                and tree[name].positionals[0].startswith("W:")
                and not tree[name].options
            ),
            "  esac",
            '  case "$path" in',
            *cases,
            "    *) return;;",
            "  esac",
            '  if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$opts" -- "$cur")); return; fi',
            "  local i n=0 word",
            "  for ((i = first; i < COMP_CWORD; i++)); do",
            '    word="${COMP_WORDS[i]}"',
            '    if [[ "$word" == -* ]]; then',
            '      [[ "|$takes|" == *"|$word|"* ]] && ((i++))',
            "    else",
            '      [ -e "$word" ] && dir="$word"  # the desired state the services come from',
            "      ((n++))",
            "    fi",
            "  done",
            '  positional "$n"',
            "}",
            "complete -F _paid paid",
        ]
    )


def _fish(tree: Tree) -> str:
    lines = ["# paid completion for fish", "complete -c paid -f"]
    top = " ".join(sorted(name for name in tree if " " not in name))
    lines.append(f'complete -c paid -n "not __fish_seen_subcommand_from {top}" -a "{top}"')
    for path, command in sorted(tree.items()):
        name, _, verb = path.partition(" ")
        seen = f"__fish_seen_subcommand_from {name}" + (
            f"; and __fish_seen_subcommand_from {verb}" if verb else ""
        )
        for kind in command.positionals[:1]:
            if kind.startswith("W:"):
                lines.append(f'complete -c paid -n "{seen}" -a "{kind[2:]}"')
            elif kind == "services":
                lines.append(
                    f'complete -c paid -n "{seen}" -a "(paid completion --services desired-state)"'
                )
            elif kind == "state":
                lines.append(f'complete -c paid -n "{seen}" -a "(__fish_complete_directories)"')
        for option in command.options:
            value = command.values.get(option)
            extra = ""
            if value is not None:
                extra = f' -x -a "{value[2:]}"' if value.startswith("W:") else " -r -F"
            lines.append(f'complete -c paid -n "{seen}" -l {option[2:]}{extra}')
    return "\n".join(lines)
