"""Repository index formats (Debian, RPM, pacman, Alpine): what each index says about other files."""
