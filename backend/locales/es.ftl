# Dropgate's words for buyers, in Spanish. Keys as in en.ftl.

## Dates

month-1 = enero
month-2 = febrero
month-3 = marzo
month-4 = abril
month-5 = mayo
month-6 = junio
month-7 = julio
month-8 = agosto
month-9 = septiembre
month-10 = octubre
month-11 = noviembre
month-12 = diciembre
date = { $day } de { $month } de { $year }
date-time = { $date }, { $time }
date-time-zone = { $date }, { $time } ({ $zone })
relative-in-days = { $n ->
    [one] dentro de un día
   *[other] dentro de { $n } días
}
relative-in-hours = { $n ->
    [one] dentro de una hora
   *[other] dentro de { $n } horas
}
relative-in-minutes = { $n ->
    [one] dentro de un minuto
   *[other] dentro de { $n } minutos
}
relative-days-ago = { $n ->
    [one] hace un día
   *[other] hace { $n } días
}
relative-hours-ago = { $n ->
    [one] hace una hora
   *[other] hace { $n } horas
}
relative-just-now = ahora mismo
times-in-zone = Horas en { $zone }.

## The download page

download-until = Puede descargar hasta el { $date }.
download-no-expiry = Sus descargas no caducan.
download-file = Descargar { $name }
downloads-left = quedan { $left } de { $max } descargas
downloads-unlimited = descargas ilimitadas
file-updated = Actualizado el { $date }
download-resume = Una descarga interrumpida se puede reanudar: solo cuenta lo que llega.
lost-link = ¿Ha perdido este enlace?
get-new-links = Recibir enlaces nuevos por correo
link-invalid-title = Este enlace de descarga no es válido
link-invalid-body = Compruebe que ha copiado el enlace completo de su correo. Si el vendedor le envió un enlace más reciente, el anterior ya no funciona.
refused-on-hold = Este pedido está retenido. El vendedor lo liberará; no tiene que hacer nada.
refused-cancelled = Este pedido se canceló, por lo que no tiene descargas.
refused-unconfirmed = El pago de este pedido aún no está confirmado. Vuelva a intentarlo cuando tenga la confirmación.
refused-refunded = Este pedido se reembolsó, por lo que sus descargas han terminado.
refused-revoked = Este enlace de descarga ya no es válido. Pida uno nuevo al vendedor.
refused-blocked = Este enlace se usó desde un segundo país y se ha bloqueado para proteger su compra. Contacte con el vendedor para desbloquearlo.
refused-expired = El periodo de descarga de este enlace terminó el { $date }.
refused-limit = { $max ->
    [one] Este enlace ya se usó para su única descarga.
   *[other] Este enlace ya se usó para sus { $max } descargas.
}
page-error = Algo ha fallado por nuestra parte. Vuelva a intentarlo en unos minutos.

## The self-service page

resend-title = Recibir enlaces de descarga nuevos
resend-intro = Introduzca la dirección de correo con la que compró. Enviamos a esa dirección enlaces nuevos para cada compra que aún se pueda descargar.
email-label = Correo electrónico
order-label = Número de pedido
optional = (opcional)
order-hint = Solo para una compra: el número de 7 cifras de su correo de pedido.
honeypot-label = Deje esto vacío
resend-submit = Enviarme enlaces nuevos
resend-sent = Si hay compras con esa dirección, le hemos enviado enlaces nuevos. Revise su bandeja de entrada (y la carpeta de spam) en unos minutos. Los enlaces anteriores ya no funcionan.
resend-error-email = Eso no parece una dirección de correo. Revísela y vuelva a intentarlo.
resend-error-order = El número de pedido es el número de 7 cifras de su correo de pedido. Revíselo, o deje el campo vacío para recibir enlaces de todas sus compras.
resend-error-quick = Ha sido más rápido de lo que esperamos de una persona. Espere un momento y vuelva a enviar el formulario.
resend-error-stale = Esta página estuvo abierta mucho tiempo. Vuelva a enviar el formulario.
resend-error-busy = Demasiadas solicitudes por ahora. Vuelva a intentarlo dentro de una hora.
library-ask-title = Ver todas sus compras
library-ask-intro = Le enviamos un enlace de acceso a una página con todo lo que compró con esta dirección. El enlace funciona una vez, durante 30 minutos.
library-ask-submit = Enviarme un enlace de acceso
library-sent = Si hay compras con esa dirección, le hemos enviado un enlace de acceso. Revise su bandeja de entrada (y la carpeta de spam) en unos minutos.

## The buyer library

library-title = Sus compras
library-signed-in = Sesión iniciada como { $email }
library-sign-out = Cerrar sesión
library-order = Pedido { $order } del { $date }
library-open = Abrir descargas
library-open-note = Al abrir se crea un enlace nuevo para esa compra; el enlace de su correo anterior deja de funcionar.
library-none = No hay compras para esta dirección.
library-signin-title = Abrir sus compras
library-signin-body = Este enlace de acceso funciona una vez. Pulse el botón para ver todo lo que ha comprado.
library-signin-submit = Mostrar mis compras
library-signin-invalid = Este enlace de acceso ya se usó o ha caducado. Pida uno nuevo más abajo.
library-ended = Su sesión ha terminado. Pida un enlace de acceso nuevo más abajo.
library-files = { $n ->
    [one] un archivo
   *[other] { $n } archivos
}

## Mails

mail-greeting = Hola:
mail-greeting-named = Hola, { $name }:
mail-downloads = { $n ->
    [0] descargas ilimitadas
    [one] 1 descarga
   *[other] { $n } descargas
}
mail-terms-until = { $downloads }, hasta el { $date }
mail-terms-no-expiry = { $downloads }, sin caducidad
mail-purchase-subject = Su descarga de { $store_name }
mail-purchase-intro = gracias por su compra (pedido { $order_id }). Sus descargas:
mail-purchase-outro = Guarde este correo: los enlaces son suyos. ¿Lo ha perdido? Pida enlaces nuevos en { $resend_url }
mail-resend-subject = Su nuevo enlace de descarga de { $store_name }
mail-resend-intro = aquí tiene un enlace nuevo para su compra (pedido { $order_id }). El enlace anterior ya no funciona.
mail-resend-outro = ¿Lo ha vuelto a perder? Pida enlaces nuevos en { $resend_url }
mail-new-password-subject = Su descarga de { $store_name }
mail-new-password-intro = { $store_name } le ha enviado una descarga:
mail-new-password-outro = ¿Ha perdido este correo? Pida enlaces nuevos en { $resend_url }
mail-self-service-subject = Sus enlaces de descarga de { $store_name }
mail-self-service-intro = ha pedido enlaces nuevos para sus compras. Los enlaces anteriores ya no funcionan.
mail-self-service-outro = ¿No lo ha pedido? Sus descargas están seguras: solo este buzón ha recibido los enlaces nuevos.
mail-product-update-subject = Nueva versión de { $products } en { $store_name }
mail-product-update-intro = hay una nueva versión de { $products }, que compró en { $store_name }.

    { $message }

    Descárguela con su nuevo enlace:
mail-product-update-outro = Los enlaces anteriores ya no funcionan; estos sí. ¿Ha perdido este correo? Pida enlaces nuevos en { $resend_url }
mail-library-sign-in-subject = Acceso a sus compras en { $store_name }
mail-library-sign-in-intro = ha pedido ver sus compras en { $store_name }. Abra este enlace en los próximos 30 minutos; funciona una vez:

    { $sign_in_url }
mail-library-sign-in-outro = ¿No lo ha pedido? Ignore este correo; sin el enlace no ocurre nada.
mail-test-subject = Correo de prueba de { $store_name }
mail-test-intro = este es un correo de prueba de Dropgate. Si puede leerlo, los compradores reciben sus enlaces.
mail-vendor-notice-subject = Nuevo pedido { $order_id } de { $buyer_email }
mail-vendor-notice-intro = se ha confirmado un pedido nuevo.

    Número de pedido: { $order_id }
    Referencia del pedido: { $order_number }
    ID de transacción: { $transaction_id }
    Comprador: { $buyer_name } <{ $buyer_email }>

    Las descargas y contraseñas del comprador:
mail-vendor-notice-outro = Encuentre este pedido en el mostrador de contraseñas por su número, su referencia o su contraseña.
