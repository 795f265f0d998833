#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    # Run from a checkout: make the framework-free core and the connectors importable uninstalled.
    sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "federated_learning_project.settings_local")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
