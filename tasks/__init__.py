"""Built-in tasks: simulators, task specs and the frozen dataset splits."""
