"""The I/O edges of paid's state: the SQLite store, archives, the git checkout,
the writer lock, and reading the desired-state directory and the files it names.

``paid.state`` holds the values these read and write; nothing there touches
a file, a database or a process.
"""
