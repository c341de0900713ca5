"""pgconnect: connect code and scripts to PostgreSQL, with secrets kept out of the repository."""

__version__ = "0.1.0"
