"""Files copied into a function's image beside copies of wisp's function runtime (never imported by wisp)."""
