"""Runtime environments: code packages (working_dir, py_modules) and pip / uv virtualenvs.

The modules here are self-contained building blocks with no RPC and no daemon state:
``packaging`` turns a local directory into a content-addressed zip and unpacks it once per
node; ``pip_env`` builds a cached virtualenv per pip / uv spec.
"""
