"""Convert: swap faces in frames and put them back (swap, mask, colour, blend, temporal smoothing)."""
