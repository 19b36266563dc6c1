"""The datastore (a folder, typically on a USB stick): reading it (the boundary where its contents enter), filling it on a connected machine, importing it, and noticing a stick inserted."""
