"""ISO 4217 currencies and their minor-unit exponents (ISO list one, amendments to 2025).

``None`` marks codes whose minor unit is "N.A." in the standard (precious metals, SDR, testing and
bond-market units): they have no minor unit, so :class:`shared.domain.money.Money` refuses them.
Withdrawn codes (HRK, SLL, ZWL, CUC, ANG, BGN after the euro change-over ...) are deliberately absent.
"""

from __future__ import annotations

_EXP0 = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_EXP3 = "BHD IQD JOD KWD LYD OMR TND"
_EXP4 = "CLF UYW"
_EXP2 = (
    "AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BMD BND BOB BOV BRL BSD BTN BWP BYN BZD "
    "CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP "
    "GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK "
    "LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO "
    "NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS "
    "SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST "
    "XCD XCG YER ZAR ZMW ZWG"
)
_NO_MINOR_UNIT = "XAG XAU XBA XBB XBC XBD XDR XPD XPT XSU XTS XUA XXX"

EXPONENTS: dict[str, int | None] = {
    **dict.fromkeys(_EXP0.split(), 0),
    **dict.fromkeys(_EXP2.split(), 2),
    **dict.fromkeys(_EXP3.split(), 3),
    **dict.fromkeys(_EXP4.split(), 4),
    **dict.fromkeys(_NO_MINOR_UNIT.split()),
}
