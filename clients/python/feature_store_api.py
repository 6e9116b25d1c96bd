# clients/python/feature_store_api.py - the product's client module: FeatureStoreClient().
"""The feature store client as the product describes it:

    from feature_store_api import FeatureStoreClient
    client = FeatureStoreClient()
    client.insert_batch('my_feature', timestamp=TIMESTAMP, data={'x': [1.0, 2.0], 'y': [3.0, 4.0]})
    client.load_batch('my_feature', timestamp=TIMESTAMP, limit=100)

FeatureStoreClient() reaches the server named by FSTORE_ADDRESS (host:port), else
localhost:6566, with the bearer token in FSTORE_TOKEN when it is set (a server run with
--tokens-file). Everything else is fstore_client.FeatureStoreClient's.
"""
import os

import fstore_client

DEFAULT_ADDRESS = "localhost:6566"


class FeatureStoreClient(fstore_client.FeatureStoreClient):
    def __init__(self, target=None, timeout=10.0, channel=None, token=None):
        super().__init__(target or os.environ.get("FSTORE_ADDRESS", DEFAULT_ADDRESS), timeout,
                         channel, token or os.environ.get("FSTORE_TOKEN") or None)


__all__ = ["FeatureStoreClient"]
