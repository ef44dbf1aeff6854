"""The console's CloudFront distribution: pages and the API pass through uncached, static files are cached."""

from __future__ import annotations

import json
import re
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from chalicelib.console import assets
from infra import template

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    return json.loads(template.RESOURCES_PATH.read_text())


@pytest.fixture(scope="module")
def config(stack: dict[str, Any]) -> dict[str, Any]:
    distribution = stack["Resources"][template.CONSOLE_DISTRIBUTION]
    assert distribution["Type"] == "AWS::CloudFront::Distribution"
    return distribution["Properties"]["DistributionConfig"]


def _static(config: dict[str, Any]) -> dict[str, Any]:
    (behaviour,) = config["CacheBehaviors"]
    return behaviour


def test_the_origin_is_the_rest_apis_stage_over_tls_1_2_only(config: dict[str, Any]) -> None:
    (origin,) = config["Origins"]
    assert origin["DomainName"] == {"Fn::Sub": "${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}"}
    stages = {s["api_gateway_stage"] for s in json.loads((ROOT / ".chalice/config.json").read_text())["stages"].values()}
    assert stages == {template.API_STAGE}
    assert origin["OriginPath"] == f"/{template.API_STAGE}"
    assert origin["CustomOriginConfig"] == {"OriginProtocolPolicy": "https-only", "HTTPSPort": 443,
                                            "OriginSSLProtocols": ["TLSv1.2"]}
    assert "S3OriginConfig" not in origin and "OriginCustomHeaders" not in origin
    assert {config["DefaultCacheBehavior"]["TargetOriginId"], _static(config)["TargetOriginId"]} == {origin["Id"]}
    assert config["Enabled"] is True and config["IPV6Enabled"] is True


def test_pages_and_the_api_are_never_cached_and_get_every_cookie_header_and_query(config: dict[str, Any]) -> None:
    default = config["DefaultCacheBehavior"]
    assert default["CachePolicyId"] == template.CACHING_DISABLED == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
    assert default["OriginRequestPolicyId"] == template.ALL_VIEWER_EXCEPT_HOST_HEADER == (
        "b689b0a8-53d0-40ab-baf2-68738e2966ac")
    assert sorted(default["AllowedMethods"]) == ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
    assert default["ViewerProtocolPolicy"] == "redirect-to-https"
    assert default["Compress"] is True
    assert "PathPattern" not in default and "ForwardedValues" not in default, "policies only, no legacy settings"


def test_static_files_are_cached_by_path_alone_get_and_head_only(config: dict[str, Any]) -> None:
    static = _static(config)
    assert static["PathPattern"] == template.CONSOLE_STATIC_PATTERN == assets.PREFIX + "*"
    assert static["CachePolicyId"] == template.CACHING_OPTIMIZED == "658327ea-f89d-4fab-a63d-7e88639e58f6"
    assert "OriginRequestPolicyId" not in static, "no cookie or Authorization header reaches a cached file"
    assert static["AllowedMethods"] == static["CachedMethods"] == ["GET", "HEAD"]
    assert static["ViewerProtocolPolicy"] == "redirect-to-https"
    assert static["Compress"] is True
    assert "ForwardedValues" not in static


def test_the_static_behaviour_covers_every_asset_and_no_page(config: dict[str, Any]) -> None:
    from app import app

    pattern = _static(config)["PathPattern"]
    assert all(fnmatchcase(assets.url(name), pattern) for name in assets.FILES)
    cached = [path for path in app.routes if fnmatchcase(path, pattern)]
    assert cached == ["/console/static/{asset}"], "only the hashed files may be cached at the edge"


def test_every_answer_gets_hsts_for_two_years(stack: dict[str, Any], config: dict[str, Any]) -> None:
    policy = stack["Resources"][template.CONSOLE_HEADERS_POLICY]
    assert policy["Type"] == "AWS::CloudFront::ResponseHeadersPolicy"
    headers = policy["Properties"]["ResponseHeadersPolicyConfig"]
    assert headers["SecurityHeadersConfig"] == {"StrictTransportSecurity": {
        "AccessControlMaxAgeSec": 63072000, "IncludeSubdomains": True, "Preload": False, "Override": True}}
    assert set(headers) <= {"Name", "Comment", "SecurityHeadersConfig"}, "the app sets CSP and the rest itself"
    ref = {"Ref": template.CONSOLE_HEADERS_POLICY}
    assert config["DefaultCacheBehavior"]["ResponseHeadersPolicyId"] == _static(config)["ResponseHeadersPolicyId"] == ref


def test_the_custom_domain_is_optional_and_needs_its_us_east_1_certificate(
    stack: dict[str, Any], config: dict[str, Any]
) -> None:
    parameters = stack["Parameters"]
    for name in ("ConsoleDomainName", "ConsoleCertificateArn"):
        assert parameters[name]["Default"] == "", name
    assert stack["Conditions"]["ConsoleCustomDomain"] == {"Fn::And": [
        {"Fn::Not": [{"Fn::Equals": [{"Ref": "ConsoleDomainName"}, ""]}]},
        {"Fn::Not": [{"Fn::Equals": [{"Ref": "ConsoleCertificateArn"}, ""]}]},
    ]}
    assert config["Aliases"] == {"Fn::If": ["ConsoleCustomDomain", [{"Ref": "ConsoleDomainName"}],
                                            {"Ref": "AWS::NoValue"}]}
    condition, custom, default = config["ViewerCertificate"]["Fn::If"]
    assert condition == "ConsoleCustomDomain"
    assert custom == {"AcmCertificateArn": {"Ref": "ConsoleCertificateArn"}, "SslSupportMethod": "sni-only",
                      "MinimumProtocolVersion": "TLSv1.2_2021"}
    assert default == {"CloudFrontDefaultCertificate": True}
    (assertion,) = stack["Rules"]["ConsoleDomainNeedsCertificate"]["Assertions"]
    domain_empty = {"Fn::Equals": [{"Ref": "ConsoleDomainName"}, ""]}
    certificate_empty = {"Fn::Equals": [{"Ref": "ConsoleCertificateArn"}, ""]}
    assert assertion["Assert"] == {"Fn::Or": [
        {"Fn::And": [domain_empty, certificate_empty]},
        {"Fn::And": [{"Fn::Not": [domain_empty]}, {"Fn::Not": [certificate_empty]}]},
    ]}, "both or neither: a name without its certificate fails the deploy before anything is created"

    certificate = re.compile(parameters["ConsoleCertificateArn"]["AllowedPattern"])
    good = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
    assert certificate.fullmatch(good) and certificate.fullmatch("")
    assert not certificate.fullmatch(good.replace("us-east-1", "eu-central-1")), "CloudFront reads us-east-1 only"
    domain = re.compile(parameters["ConsoleDomainName"]["AllowedPattern"])
    assert domain.fullmatch("console.example.com") and domain.fullmatch("")
    assert not domain.fullmatch("https://console.example.com") and not domain.fullmatch("console.example.com/")


def test_the_price_class_is_a_parameter_europe_and_north_america_by_default(
    stack: dict[str, Any], config: dict[str, Any]
) -> None:
    parameter = stack["Parameters"]["ConsolePriceClass"]
    assert parameter["Default"] == "PriceClass_100"
    assert parameter["AllowedValues"] == ["PriceClass_100", "PriceClass_200", "PriceClass_All"]
    assert config["PriceClass"] == {"Ref": "ConsolePriceClass"}


def test_outputs_give_the_console_url_origin_domain_and_id(stack: dict[str, Any]) -> None:
    outputs = stack["Outputs"]
    condition, custom, default = outputs["ConsoleUrl"]["Value"]["Fn::If"]
    assert condition == "ConsoleCustomDomain"
    assert custom == {"Fn::Sub": "https://${ConsoleDomainName}/console"}
    assert default == {"Fn::Sub": "https://${ConsoleDistribution.DomainName}/console"}
    assert outputs["ConsoleOrigin"]["Value"]["Fn::If"][2] == {"Fn::Sub": "https://${ConsoleDistribution.DomainName}"}
    assert outputs["ConsoleDistributionDomainName"]["Value"] == {"Fn::GetAtt": ["ConsoleDistribution", "DomainName"]}
    assert outputs["ConsoleDistributionId"]["Value"] == {"Ref": "ConsoleDistribution"}


def test_the_api_gzips_what_cloudfront_passes_through_uncompressed(stack: dict[str, Any]) -> None:
    """`CachingDisabled` turns CloudFront's own compression off, so pages are compressed by API Gateway."""
    assert stack["Resources"]["RestAPI"]["Properties"]["MinimumCompressionSize"] == 1024


def test_static_files_say_immutable_and_pages_say_no_store() -> None:
    """What the two behaviours rely on: the app's own Cache-Control on each kind of answer."""
    from chalice.test import Client

    from app import app

    with Client(app) as client:
        static = client.http.get(assets.url("console.css"))
        missing = client.http.get("/console/static/console.000000000000.css")
    assert static.status_code == 200 and static.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert missing.status_code == 404 and missing.headers["Cache-Control"] == "no-store"
