"""The Textual front end of poolkeeper: a live worker table showing desired vs observed.

It imports poolkeeper; poolkeeper never imports it (the CLI finds it through the
``poolkeeper.frontends`` entry point).
"""
