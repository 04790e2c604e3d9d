"""Anomaly detection methods behind one contract (see :mod:`anolearn.methods.base`)."""
from .anoseg import AnoSeg
from .base import METHODS, AnomalyMethod, Prediction, create_method, image_batches, load_method, register
from .cutpaste import CutPasteGDE
from .cutswap import CutSwapGDE
from .draem import DRAEM
from .evaluate import evaluate, predict_dataset
from .feature_knn import FeatureKNN
from .raw_pixel import RawPixelBaseline
from .riad import RIAD
from .sgsf import SGSF
from .ssm import SSM, SSMPrediction, official_image_scores

__all__ = [
    "METHODS", "AnoSeg", "AnomalyMethod", "CutPasteGDE", "CutSwapGDE", "FeatureKNN", "Prediction", "RawPixelBaseline", "create_method", "evaluate",
    "image_batches", "load_method", "predict_dataset", "register",
    "RIAD", "SSM", "SSMPrediction", "official_image_scores",
    "DRAEM", "SGSF",
]
