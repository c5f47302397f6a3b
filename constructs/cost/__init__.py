"""Cost controls: the environment's monthly budget."""
