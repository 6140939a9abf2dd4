"""Jobs: the protocol, the registry of job kinds, the runner and the worker process."""
