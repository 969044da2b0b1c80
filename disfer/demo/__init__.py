"""The offline demo study: synthetic faces and a simulated crowd, built through the real pipeline."""
