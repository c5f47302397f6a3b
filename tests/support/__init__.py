"""Shared test helpers: the local AWS emulator (``moto_server``) and Terraform runners (``terraform``)."""
