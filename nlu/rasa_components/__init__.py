"""Custom Rasa components; imported by Rasa in its own virtualenv (.venv-rasa), never by the app."""
