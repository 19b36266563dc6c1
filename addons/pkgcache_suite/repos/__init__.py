"""Repository definitions in apt-cacher-ng's syntax: remapping, targets and their health."""
