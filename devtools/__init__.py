"""Checks the project runs on itself (`make lint`); nothing here ships with the cluster."""
