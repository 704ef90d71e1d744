"""Pure matching: values in, decisions out. No database, no FastAPI, no clock."""
