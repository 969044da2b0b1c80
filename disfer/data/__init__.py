"""The data layer: faces in (FER-2013 CSV, image folders, FERPlus counts), the distortion registry,
the study's stimuli and playlists, the crowd's votes, and the stimuli written out for a crowd
platform. It imports only the foundation (`disfer.store`, `emotions`, `images`, `csvio`, ...)."""
