"""The ``dutydesk`` command line."""
