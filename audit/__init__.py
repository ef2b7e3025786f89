"""Audits of the models in the wild, over the prediction log (``serving/predlog``): ``modelyard audit sample``
draws logged predictions without ground truth for annotators, ``modelyard audit import`` stores their labels,
``modelyard audit report`` writes live quality per version and arm, the A/B outcome of a traffic split, shadow
agreement and input drift (HTML, PNG, JSON)."""
