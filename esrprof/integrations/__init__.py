"""Adapters to training frameworks. Each imports its framework only when used."""
