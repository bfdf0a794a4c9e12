"""The reference delivery order (shared/reference/orders/delivery-berlin.json), embedded.

Embedded as a module rather than a data file because the package build only ships
`wix_printer/samples/*.json`, and the fake must work from an installed wheel too.
"""

from __future__ import annotations

import copy
import json
from typing import Any

_SAMPLE_JSON = r'''
{
 "id": "7b1e2f40-3c9a-4d6e-9f21-5a8c0d1e2b34",
 "number": "10234",
 "createdDate": "2026-03-14T17:42:07.512Z",
 "updatedDate": "2026-03-14T17:42:09.880Z",
 "status": "APPROVED",
 "paymentStatus": "PAID",
 "fulfillmentStatus": "NOT_FULFILLED",
 "currency": "EUR",
 "weightUnit": "KG",
 "taxIncludedInPrices": true,
 "siteLanguage": "de",
 "buyerLanguage": "de",
 "archived": false,
 "seenByAHuman": false,
 "channelInfo": {
  "type": "WEB"
 },
 "buyerInfo": {
  "visitorId": "d2c4a7e1-0b3f-4f6a-8e2d-91c5b7a3f010",
  "contactId": "5e8f1c22-7a4b-4b9e-a1d3-2f6c8e0b9a45",
  "email": "joerg.mueller@example.de"
 },
 "businessLocation": {
  "id": "c0ffee00-1234-4abc-9def-00000000b0c5",
  "name": "Imbiss am Boxi"
 },
 "lineItems": [
  {
   "id": "00000000-0000-0000-0000-000000000001",
   "productName": {
    "original": "Döner Teller",
    "translated": "Döner Teller"
   },
   "catalogReference": {
    "catalogItemId": "3f7c1a52-6b1e-4c1a-9d55-0b8e6f0e2a11",
    "appId": "9a5d83fd-8570-482e-81ab-cfa88942ee60",
    "options": {
     "operationId": "a1b2c3d4-0000-4000-8000-000000000001",
     "menuId": "a1b2c3d4-0000-4000-8000-0000000000aa",
     "sectionId": "a1b2c3d4-0000-4000-8000-0000000000bb",
     "specialRequests": "Extra scharf bitte 🌶️"
    }
   },
   "quantity": 1,
   "modifierGroups": [
    {
     "id": "mg-sauce-01",
     "name": {
      "original": "Sauce"
     },
     "modifiers": [
      {
       "id": "mod-knobi",
       "quantity": 1,
       "label": {
        "original": "Knoblauchsauce"
       },
       "price": {
        "amount": "0.00",
        "formattedAmount": "0,00 €"
       }
      }
     ]
    },
    {
     "id": "mg-extras-01",
     "name": {
      "original": "Extras"
     },
     "modifiers": [
      {
       "id": "mod-ohne-zwiebeln",
       "quantity": 1,
       "label": {
        "original": "ohne Zwiebeln"
       },
       "price": {
        "amount": "0.00",
        "formattedAmount": "0,00 €"
       }
      },
      {
       "id": "mod-feta",
       "quantity": 1,
       "label": {
        "original": "Extra Feta"
       },
       "price": {
        "amount": "1.50",
        "formattedAmount": "1,50 €"
       }
      }
     ]
    }
   ],
   "descriptionLines": [],
   "price": {
    "amount": "14.00",
    "formattedAmount": "14,00 €"
   },
   "totalDiscount": {
    "amount": "1.40",
    "formattedAmount": "1,40 €"
   },
   "totalPriceAfterTax": {
    "amount": "12.60",
    "formattedAmount": "12,60 €"
   },
   "taxInfo": {
    "taxAmount": {
     "amount": "0.82"
    },
    "taxRate": "0.07",
    "taxIncludedInPrice": true
   },
   "itemType": {
    "preset": "PHYSICAL"
   },
   "paymentOption": "FULL_PAYMENT_ONLINE"
  },
  {
   "id": "00000000-0000-0000-0000-000000000002",
   "productName": {
    "original": "Pizza Margherita",
    "translated": "Pizza Margherita"
   },
   "catalogReference": {
    "catalogItemId": "8e2d7b10-4c3a-4f5e-b6a7-1c9d0e2f3a44",
    "appId": "9a5d83fd-8570-482e-81ab-cfa88942ee60"
   },
   "quantity": 2,
   "descriptionLines": [
    {
     "name": {
      "original": "Größe",
      "translated": "Größe"
     },
     "plainText": {
      "original": "Ø 32 cm",
      "translated": "Ø 32 cm"
     }
    }
   ],
   "price": {
    "amount": "9.50",
    "formattedAmount": "9,50 €"
   },
   "totalDiscount": {
    "amount": "1.90",
    "formattedAmount": "1,90 €"
   },
   "totalPriceAfterTax": {
    "amount": "17.10",
    "formattedAmount": "17,10 €"
   },
   "taxInfo": {
    "taxAmount": {
     "amount": "1.12"
    },
    "taxRate": "0.07",
    "taxIncludedInPrice": true
   },
   "itemType": {
    "preset": "PHYSICAL"
   },
   "paymentOption": "FULL_PAYMENT_ONLINE"
  },
  {
   "id": "00000000-0000-0000-0000-000000000003",
   "productName": {
    "original": "Tiramisu"
   },
   "catalogReference": {
    "catalogItemId": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
    "appId": "9a5d83fd-8570-482e-81ab-cfa88942ee60"
   },
   "quantity": 1,
   "price": {
    "amount": "4.90",
    "formattedAmount": "4,90 €"
   },
   "totalDiscount": {
    "amount": "0.49"
   },
   "totalPriceAfterTax": {
    "amount": "4.41"
   },
   "taxInfo": {
    "taxAmount": {
     "amount": "0.29"
    },
    "taxRate": "0.07",
    "taxIncludedInPrice": true
   },
   "paymentOption": "FULL_PAYMENT_ONLINE"
  },
  {
   "id": "00000000-0000-0000-0000-000000000004",
   "productName": {
    "original": "Club-Mate 0,5 l (inkl. 0,15 € Pfand)"
   },
   "catalogReference": {
    "catalogItemId": "9f8e7d6c-5b4a-4321-9876-543210fedcba",
    "appId": "9a5d83fd-8570-482e-81ab-cfa88942ee60"
   },
   "quantity": 2,
   "price": {
    "amount": "2.80",
    "formattedAmount": "2,80 €"
   },
   "totalDiscount": {
    "amount": "0.56"
   },
   "totalPriceAfterTax": {
    "amount": "5.04"
   },
   "taxInfo": {
    "taxAmount": {
     "amount": "0.80"
    },
    "taxRate": "0.19",
    "taxIncludedInPrice": true
   },
   "paymentOption": "FULL_PAYMENT_ONLINE"
  },
  {
   "id": "00000000-0000-0000-0000-000000000005",
   "productName": {
    "original": "Chiliöl (gratis)"
   },
   "catalogReference": {
    "catalogItemId": "0d0d0d0d-1111-4222-8333-444455556666",
    "appId": "9a5d83fd-8570-482e-81ab-cfa88942ee60"
   },
   "quantity": 1,
   "price": {
    "amount": "0.00",
    "formattedAmount": "0,00 €"
   },
   "totalDiscount": {
    "amount": "0.00"
   },
   "totalPriceAfterTax": {
    "amount": "0.00"
   },
   "paymentOption": "FULL_PAYMENT_ONLINE"
  }
 ],
 "priceSummary": {
  "subtotal": {
   "amount": "43.50",
   "formattedAmount": "43,50 €"
  },
  "shipping": {
   "amount": "2.50",
   "formattedAmount": "2,50 €"
  },
  "tax": {
   "amount": "3.19",
   "formattedAmount": "3,19 €"
  },
  "discount": {
   "amount": "4.35",
   "formattedAmount": "4,35 €"
  },
  "total": {
   "amount": "41.65",
   "formattedAmount": "41,65 €"
  }
 },
 "taxInfo": {
  "totalTax": {
   "amount": "3.19"
  },
  "taxBreakdown": [
   {
    "taxName": "USt. 7 %",
    "rate": "0.07",
    "aggregatedTaxAmount": {
     "amount": "2.39"
    }
   },
   {
    "taxName": "USt. 19 %",
    "rate": "0.19",
    "aggregatedTaxAmount": {
     "amount": "0.80"
    }
   }
  ]
 },
 "appliedDiscounts": [
  {
   "discountType": "GLOBAL",
   "coupon": {
    "id": "4294c3d3-1604-41b8-9ba5-119bb17d2d7d",
    "code": "WILLKOMMEN10",
    "name": "10 % Willkommensrabatt",
    "amount": {
     "amount": "4.35"
    }
   }
  }
 ],
 "billingInfo": {
  "address": {
   "country": "DE",
   "city": "Berlin",
   "postalCode": "10245",
   "addressLine": "Simon-Dach-Straße 12",
   "addressLine2": "Hinterhaus, 3. OG, bei Schröder"
  },
  "contactDetails": {
   "firstName": "Jörg",
   "lastName": "Müller-Lüdenscheidt",
   "phone": "+49 30 12345678"
  }
 },
 "recipientInfo": {
  "contactDetails": {
   "firstName": "Jörg",
   "lastName": "Müller-Lüdenscheidt",
   "phone": "+49 30 12345678"
  }
 },
 "shippingInfo": {
  "title": "Lieferung",
  "region": {
   "name": "Friedrichshain"
  },
  "logistics": {
   "shippingDestination": {
    "address": {
     "country": "DE",
     "subdivision": "DE-BE",
     "city": "Berlin",
     "postalCode": "10245",
     "streetAddress": {
      "number": "12",
      "name": "Simon-Dach-Straße"
     },
     "addressLine": "Simon-Dach-Straße 12",
     "addressLine2": "Hinterhaus, 3. OG, bei Schröder",
     "geocode": {
      "latitude": 52.5106,
      "longitude": 13.4567
     }
    },
    "contactDetails": {
     "firstName": "Jörg",
     "lastName": "Müller-Lüdenscheidt",
     "phone": "+49 30 12345678"
    }
   },
   "instructions": "Bitte 2× klingeln, Hund bellt nur 🐶",
   "deliveryTimeSlot": {
    "from": "2026-03-14T18:25:00.000Z",
    "to": "2026-03-14T18:40:00.000Z"
   }
  },
  "cost": {
   "price": {
    "amount": "2.50"
   }
  }
 },
 "buyerNote": "Bitte Besteck beilegen 🍴 und die Pizza in 8 Stücke schneiden. Danke!",
 "balanceSummary": {
  "balance": {
   "amount": "0.00"
  },
  "paid": {
   "amount": "41.65"
  }
 }
}
'''

_SAMPLE: dict[str, Any] = json.loads(_SAMPLE_JSON)


def sample_order() -> dict[str, Any]:
    """A fresh deep copy of the reference order, safe to modify."""
    return copy.deepcopy(_SAMPLE)
