"""nucleiseg: the logic behind the workflow's rules, importable by rule scripts and tests.

Each module holds one stage or one concern; docs/architecture.md maps them to the rules.
"""

__version__ = "0.1.0"
