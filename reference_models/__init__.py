"""The NTIRE Efficient SR challenge's reference architectures and their published figures."""

from reference_models.registry import REGISTRY, Published, ReferenceModel, get, names

__all__ = ["REGISTRY", "Published", "ReferenceModel", "get", "names"]
