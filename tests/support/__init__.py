"""What tests share: queries over synthesized JSON, small stacks for construct tests, terraform, the emulator."""
