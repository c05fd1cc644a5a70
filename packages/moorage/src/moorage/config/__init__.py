"""Configuration: settings from files and the environment, and option parsing."""
