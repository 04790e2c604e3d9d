"""Anomaly detection methods behind one contract (see :mod:`anolearn.methods.base`)."""
from .base import METHODS, AnomalyMethod, Prediction, create_method, image_batches, load_method, register
from .evaluate import evaluate, predict_dataset
from .feature_knn import FeatureKNN
from .raw_pixel import RawPixelBaseline

__all__ = [
    "METHODS", "AnomalyMethod", "FeatureKNN", "Prediction", "RawPixelBaseline", "create_method", "evaluate",
    "image_batches", "load_method", "predict_dataset", "register",
]
