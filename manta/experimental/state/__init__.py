"""``manta.experimental.state``: Ray's earlier path of the state API (``manta.util.state``)."""
