"""``manta cert``: make a cluster's CA and its nodes' certificates for mutual TLS."""

from __future__ import annotations

import click

from manta._private.rpc import certs


@click.group()
def cert() -> None:
    """Make the certificates that turn on TLS (--tls-ca/--tls-cert/--tls-key)."""


@cert.command("create-ca")
@click.option(
    "--out-dir", required=True, type=click.Path(file_okay=False), help="Where ca.crt and ca.key go."
)
@click.option("--name", default="Manta cluster CA", show_default=True, help="The CA's common name.")
@click.option(
    "--days", type=click.IntRange(min=1), default=3650, show_default=True, help="How long it is valid."
)
def create_ca(out_dir: str, name: str, days: int) -> None:
    """Make a new certificate authority for one cluster (its key is written mode 0600)."""
    try:
        written = certs.create_ca(out_dir, name, days)
    except (certs.CertError, OSError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"CA certificate: {written.cert}")
    click.echo(f"CA key: {written.key} (keep it off the cluster's nodes; it signs their certificates)")


@cert.command("create-node")
@click.option("--ca-cert", required=True, type=click.Path(dir_okay=False), help="The CA certificate.")
@click.option("--ca-key", required=True, type=click.Path(dir_okay=False), help="The CA key.")
@click.option("--ip", "ips", multiple=True, help="An IP address the node is reached at (repeatable).")
@click.option("--dns", "names", multiple=True, help="A DNS name the node is reached by (repeatable).")
@click.option(
    "--out-dir", required=True, type=click.Path(file_okay=False), help="Where node.crt and node.key go."
)
@click.option(
    "--days", type=click.IntRange(min=1), default=825, show_default=True, help="How long it is valid."
)
def create_node(
    ca_cert: str, ca_key: str, ips: tuple[str, ...], names: tuple[str, ...], out_dir: str, days: int
) -> None:
    """Make a certificate for one node (or a driver's or client's host), signed by the CA."""
    try:
        written = certs.create_node(ca_cert, ca_key, list(ips), list(names), out_dir, days)
    except (certs.CertError, OSError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"node certificate: {written.cert}")
    click.echo(f"node key: {written.key}")
    click.echo(f"start the node with: --tls-ca {ca_cert} --tls-cert {written.cert} --tls-key {written.key}")
