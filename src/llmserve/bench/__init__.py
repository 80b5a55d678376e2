"""bench: `make bench`, the course's headline ratios measured side by side in one run."""
