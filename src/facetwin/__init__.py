"""facetwin: swap faces in photos and video with a shared-encoder autoencoder, labelled as synthetic."""

__version__ = "0.1.0"
