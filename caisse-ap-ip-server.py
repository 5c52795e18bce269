#!/usr/bin/env python3
"""Caisse-AP over IP payment terminal simulator (see README.md)."""

import sys

from caisse_ap_ip.server_cli import main

if __name__ == "__main__":
    sys.exit(main())
