"""Domain core: plain Python + DuckDB SQL, no Dagster import (the defs/ layer wires it up)."""
