"""Sizes as people read them, the one formatter of the lab (apps/mapreduce/static/mapreduce/js/bytes.js is its
twin): binary units named as such, since the limits are powers of two (20 MiB, not 21 MB)."""

UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_bytes(n: float) -> str:
    """512 B, 1.5 KiB, 20 MiB: whole bytes, one decimal above (dropped when it is 0)."""
    for unit in UNITS:
        if round(abs(n), 1) < 1024 or unit == UNITS[-1]:
            break
        n /= 1024
    if unit == "B":
        return f"{n:.0f} B"
    text = f"{n:.1f}"
    return f"{text.removesuffix('.0')} {unit}"
