"""The parts paid ships beside its code: units, alert rules, dashboard, schema, containers.conf.

Found at run time with ``importlib.resources`` (``paid files`` lists them).
"""
