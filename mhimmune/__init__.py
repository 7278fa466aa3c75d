"""mhimmune: magnetic-hyperthermia-induced tumour immunity, simulated."""
__version__ = "0.1.0"
