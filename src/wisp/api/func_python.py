"""The func-python middleware Knative's Python function images run projects under; wisp's project environments
and the images `wisp export` writes take the same range. A module of its own: the function template process
imports it, and must not load anything a project did not ask for."""

FUNC_PYTHON = "func-python>=0.8,<0.9"
