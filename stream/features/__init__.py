"""The one feature module shared by the stream and training (no train/serve skew).

state        per-user aggregate kept in a Faust table, and the pure apply/evict functions
declaration  the declared profile attributes: which profile columns the model takes, and from where
profile      profile columns; promo: promotion registry entries (text, static attributes)
compute      vectorised USER_FEATURES / PROMO_ATTRS rows of a batch of exposures, as of each exposure time
labels       outcomes of exposures within the attribution window
replay       a recorded history applied through the same functions (training, backfill)
"""
