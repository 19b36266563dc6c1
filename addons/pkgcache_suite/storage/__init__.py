"""The one cache store: bodies on disk, metadata in diskcache, the private area.  The only code that touches the tree layout or diskcache."""
