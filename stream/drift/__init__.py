"""Input and prediction drift: live sliding windows compared with the reference statistics of the model."""
