#!/usr/bin/env python3
"""Caisse-AP over IP point-of-sale simulator (see README.md)."""

import sys

from caisse_ap_ip.client_cli import main

if __name__ == "__main__":
    sys.exit(main())
