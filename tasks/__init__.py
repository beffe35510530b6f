"""Built-in tasks: their specs and split recipes, the frozen dataset splits, and in
``systems`` the simulators they are generated with."""
