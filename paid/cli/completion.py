"""``paid completion bash|zsh|fish``: shell completion, generated from the parser itself.

The commands, their sub-verbs and their options are read off the argparse
tree, so completion cannot drift from the command line.
"""

from __future__ import annotations

import argparse

from paid.cli.common import EXIT_OK, out
from paid.cli.options import Parents, Subparsers


def register(sub: Subparsers, parents: Parents) -> None:
    completion = sub.add_parser("completion", help="print a shell completion script")
    completion.add_argument("shell", choices=("bash", "zsh", "fish"))
    completion.set_defaults(handler=_completion)


def _completion(args: argparse.Namespace) -> int:
    from paid.cli.main import build_parser  # noqa: PLC0415 -- the whole tree, built once here

    tree = _tree(build_parser())
    out(_bash(tree) if args.shell in ("bash", "zsh") else _fish(tree))
    if args.shell == "zsh":
        out("# zsh: autoload -U +X bashcompinit && bashcompinit, then source this")
    return EXIT_OK


Tree = dict[str, tuple[list[str], dict[str, list[str]]]]  # command -> options, verbs -> options


def _tree(parser: argparse.ArgumentParser) -> Tree:
    tree: Tree = {}
    for name, command in _subcommands(parser).items():
        verbs = {verb: _options(p) for verb, p in _subcommands(command).items()}
        tree[name] = (_options(command), verbs)
    return tree


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(o for a in parser._actions for o in a.option_strings if o.startswith("--"))


def _bash(tree: Tree) -> str:
    cases = []
    for name, (options, verbs) in sorted(tree.items()):
        if verbs:
            inner = " ".join(f'{v}) opts="{" ".join(o)}";;' for v, o in sorted(verbs.items()))
            cases.append(
                f'    {name}) if [ "$COMP_CWORD" -eq 2 ]; then words="{" ".join(sorted(verbs))}"; '
                f'else case "$verb" in {inner} esac; fi;;'
            )
        else:
            cases.append(f'    {name}) opts="{" ".join(options)}";;')
    return "\n".join(
        [
            "# paid completion for bash (and zsh with bashcompinit)",
            "_paid() {",
            '  local cur="${COMP_WORDS[COMP_CWORD]}"',
            '  local cmd="${COMP_WORDS[1]}" verb="${COMP_WORDS[2]}"',
            '  local opts="" words=""',
            '  if [ "$COMP_CWORD" -eq 1 ]; then',
            f'    COMPREPLY=($(compgen -W "{" ".join(sorted(tree))}" -- "$cur")); return',
            "  fi",
            '  case "$cmd" in',
            *cases,
            "  esac",
            '  if [ -n "$words" ]; then COMPREPLY=($(compgen -W "$words" -- "$cur"));',
            '  elif [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$opts" -- "$cur"));',
            '  else COMPREPLY=($(compgen -f -- "$cur")); fi',
            "}",
            "complete -F _paid paid",
        ]
    )


def _fish(tree: Tree) -> str:
    lines = ["# paid completion for fish", "complete -c paid -f"]
    commands = " ".join(sorted(tree))
    lines.append(
        f'complete -c paid -n "not __fish_seen_subcommand_from {commands}" -a "{commands}"'
    )
    for name, (own, verbs) in sorted(tree.items()):
        options = own
        if verbs:
            lines.append(
                f'complete -c paid -n "__fish_seen_subcommand_from {name}" '
                f'-a "{" ".join(sorted(verbs))}"'
            )
            options = sorted({o for opts in verbs.values() for o in opts})
        for option in options:
            lines.append(
                f'complete -c paid -n "__fish_seen_subcommand_from {name}" -l {option[2:]}'
            )
    return "\n".join(lines)
