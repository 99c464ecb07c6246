"""Recommendations: popularity blended with item-item and ALS collaborative filtering on implicit feedback, replenishment of consumables,
related products, targeted offers and the offline evaluation. Pure functions on DataFrames."""

from forecasting.recommend.evaluate import evaluate, ranking_metrics, time_split, tune_weights
from forecasting.recommend.model import ItemItemModel, fit
from forecasting.recommend.offers import offer_targets
from forecasting.recommend.recommend import Rules, recommend
from forecasting.recommend.related import related_products
from forecasting.recommend.replenish import consumable_categories, replenishment

__all__ = ["ItemItemModel", "Rules", "consumable_categories", "evaluate", "fit", "offer_targets", "ranking_metrics", "recommend",
           "related_products", "replenishment", "time_split", "tune_weights"]
