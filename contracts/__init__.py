"""contracts: the on-chain side of the consent ledger.

* ``AnchorRegistry.sol`` and ``artifacts/`` -- the registry contract and its compiled form
  (``compile.py`` builds it, ``artifact.py`` loads it);
* ``chain.py`` -- ``connect()`` to a JSON-RPC node or to the embedded chain
  (``embedded.py`` on ``evmdb.py``, its dev key in ``devkey.py``);
* ``client.py`` -- ``AnchorRegistryClient``: deploy, assign logs, anchor, read, verify;
* ``records.py`` -- ``AnchorRecord`` and ``PreparedTx``; ``errors.py`` -- every error.

Import from the modules; this package module stays empty so that importing, say,
``contracts.errors`` does not load web3 and py-evm.
"""
