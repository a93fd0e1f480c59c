"""The barrage demo's message-processing service (container class): CloudEvents in, table rows out."""
