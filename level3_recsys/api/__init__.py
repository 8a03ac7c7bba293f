"""The HTTP side of the service: one module per router, plus what they share.

Order a request flows: :mod:`.middleware` (metrics, body limit) → the route's path convertor
(:mod:`.ids`) and request model (:mod:`level3_recsys.schemas`) → :mod:`.dependencies` (the
service, readiness, the admin token, the caller's address) → the router
(:mod:`.recommendations`, :mod:`.feedback`, :mod:`.users`, :mod:`.ops`, :mod:`.admin`,
:mod:`.page`) → :class:`level3_recsys.service.RecommenderService`; errors are shaped by
:mod:`.errors`.
"""
