"""Clinicflow: workflow automation for clinics, as a desktop app with a durable runtime."""

__version__ = "0.1.0"
