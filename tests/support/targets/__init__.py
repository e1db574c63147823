"""One module per driver providing a session fixture ``<driver>_target`` (a ConnectorTarget).
They are registered as pytest plugins by tests/conftest.py."""
